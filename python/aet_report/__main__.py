import sys

from aet_report.cli import main

sys.exit(main(sys.argv[1:]))
