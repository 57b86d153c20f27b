"""`python -m cyclegan_tool` (also what `torchrun -m cyclegan_tool train ...` runs)."""

from cyclegan_tool.cli import main

if __name__ == "__main__":
    main()
