"""`python -m evalflow.cli` is the `evalflow` command."""

import sys

from evalflow.cli import main

sys.exit(main())
