"""The names `build --progress` takes: apart from the views, so that the command can offer them
before it forks the context walkers without importing the views and the events they show."""

MODES = ("auto", "plain", "tty", "quiet", "rawjson")
