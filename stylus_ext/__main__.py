import sys

from stylus_ext.cli import main

sys.exit(main())
