"""``python -m reference.pc --kernel bzImage [--initrd FILE] [--append LINE]``."""

from reference.pc.run import exit_main

if __name__ == "__main__":  # importing the package's modules (tests do) runs nothing
    exit_main()
