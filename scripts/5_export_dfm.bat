@echo off
rem Launcher: runs "dfl export" (DeepFaceLive .dfm) on this repository's workspace.
set "ROOT=%~dp0.."
set "DFL=dfl"
if exist "%ROOT%\.venv\Scripts\dfl.exe" set "DFL=%ROOT%\.venv\Scripts\dfl.exe"
"%DFL%" export --workspace "%ROOT%\workspace" %*
pause
