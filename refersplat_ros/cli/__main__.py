"""``python -m refersplat_ros.cli``: the ``refersplat`` command."""
import sys

from refersplat_ros.cli.main import main

sys.exit(main())
