@echo off
rem Install the project with its test extras and run the default test suite.
cd /d "%~dp0.."
python -m pip install -q -e ".[test]" && python -m pytest -q %*
pause
