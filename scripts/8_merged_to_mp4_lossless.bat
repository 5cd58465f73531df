@echo off
rem Launcher: runs "dfl video-from-sequence --lossless" (merged to mp4, lossless) on this repository's workspace.
set "ROOT=%~dp0.."
set "DFL=dfl"
if exist "%ROOT%\.venv\Scripts\dfl.exe" set "DFL=%ROOT%\.venv\Scripts\dfl.exe"
"%DFL%" video-from-sequence --lossless --workspace "%ROOT%\workspace" %*
pause
