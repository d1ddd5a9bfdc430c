import sys

from tutela.cli import main

sys.exit(main())
