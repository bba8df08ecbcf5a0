"""`python -m locksmith.cli`: the `locksmith` command."""

import sys

from locksmith.cli import main

sys.exit(main())
