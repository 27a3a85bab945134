"""``python -m funnelsim``: the command line (:mod:`funnelsim.cli`)."""

from funnelsim.cli import main

main()
