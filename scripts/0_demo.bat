@echo off
rem The demo: make the synthetic facesets if missing, then train Quick96 on them.
set "ROOT=%~dp0.."
set "DFL=dfl"
if exist "%ROOT%\.venv\Scripts\dfl.exe" set "DFL=%ROOT%\.venv\Scripts\dfl.exe"
dir /b "%ROOT%\workspace\data_src\aligned\*.jpg" >nul 2>&1 || "%DFL%" demo --workspace "%ROOT%\workspace"
"%DFL%" train --model Quick96 --workspace "%ROOT%\workspace" %*
pause
