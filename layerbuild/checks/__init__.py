"""BuildKit's Dockerfile build checks (lint rules), pure: see run.run_checks."""
