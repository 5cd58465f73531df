@echo off
rem Launcher: runs "dfl train --model Quick96" on this repository's workspace.
set "ROOT=%~dp0.."
set "DFL=dfl"
if exist "%ROOT%\.venv\Scripts\dfl.exe" set "DFL=%ROOT%\.venv\Scripts\dfl.exe"
"%DFL%" train --model Quick96 --workspace "%ROOT%\workspace" %*
pause
