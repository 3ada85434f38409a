import sys

from openautoglm.cli.main import main

sys.exit(main())
