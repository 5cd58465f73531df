@echo off
rem Launcher: runs "dfl merge" (merged frames into workspace\data_dst\merged) on this repository's workspace.
set "ROOT=%~dp0.."
set "DFL=dfl"
if exist "%ROOT%\.venv\Scripts\dfl.exe" set "DFL=%ROOT%\.venv\Scripts\dfl.exe"
"%DFL%" merge --workspace "%ROOT%\workspace" %*
pause
