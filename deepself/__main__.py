import sys

from deepself.cli import main

sys.exit(main())
