import sys

from consumption_monitor.cli import main

sys.exit(main())
