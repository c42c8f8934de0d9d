"""``python -m spanbert``: the CLI (works under ``torchrun``/``accelerate launch`` too)."""

import sys

from .cli import main

sys.exit(main())
