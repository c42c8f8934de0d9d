"""``python -m spanbert``: the CLI (works under ``torchrun``/``accelerate launch`` too)."""

import sys

from spanbert.cli import main

sys.exit(main())
