"""The web service and page (``v2p serve``): upload a clip, get prompts, rate them."""
