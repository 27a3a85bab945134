from funnelsim.cli import main

main()
