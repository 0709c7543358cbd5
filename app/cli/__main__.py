from app.cli.main import app

app(prog_name="python -m app.cli")
