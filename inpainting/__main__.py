"""``python -m inpainting`` = the ``inpainting`` command."""
import sys

from .cli import main

sys.exit(main())
