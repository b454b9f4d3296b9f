import sys

from cm_devtools.cli import main

sys.exit(main())
