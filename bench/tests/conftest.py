import sys
from pathlib import Path

# The benchmark's modules import each other as `peer.*`, as they do when run from bench/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
