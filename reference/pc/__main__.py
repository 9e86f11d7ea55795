"""``python -m reference.pc --kernel bzImage [--initrd FILE] [--append LINE]``."""

from reference.pc.run import exit_main

exit_main()
