from v2p.cli import main

main()
