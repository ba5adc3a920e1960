import getpass

import six

print(f"hello from {getpass.getuser()}, six {six.__version__}")
