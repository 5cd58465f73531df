@echo off
rem Launcher: runs "dfl extract-video" on workspace\data_dst.* into workspace\data_dst.
set "ROOT=%~dp0.."
set "DFL=dfl"
if exist "%ROOT%\.venv\Scripts\dfl.exe" set "DFL=%ROOT%\.venv\Scripts\dfl.exe"
"%DFL%" extract-video --input-file "%ROOT%\workspace\data_dst.*" --output-dir "%ROOT%\workspace\data_dst" %*
pause
