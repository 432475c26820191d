"""``v2p-sight``: real vision models shipped in the package, bridged into MiniLM's text space."""
