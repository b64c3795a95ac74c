"""``python -m inpainting`` = the ``inpainting`` command."""
import sys

from .app.cli import main

sys.exit(main())
