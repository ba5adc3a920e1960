from layerbuild.entry import main

main()
