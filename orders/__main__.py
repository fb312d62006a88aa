"""`python -m orders`: the same as the `orders` command."""

import sys

from orders._console import main

sys.exit(main())
