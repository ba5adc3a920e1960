from layerbuild.cli import main

main()
