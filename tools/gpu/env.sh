# Sourced by the tools/gpu/*.sh scripts on the device: installs the carried wheels (.whl) into
# /tmp/site and gives Python a writable bytecode cache, compiled up front. The device image's
# packages have no usable __pycache__, so every process compiled torch's sources again (7.5 s per
# process, measured with cProfile in tools/gpu/walltime.sh); a pip-installed machine has them.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/tmp/pyc
SITE=$(python3 -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))")
[ "${FIB_GPU_COMPILEALL:-1}" = 0 ] || python3 -m compileall -q -j 0 "$SITE" /tmp/site "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" $PWD/pytest_fib > /dev/null 2>&1
[ "${FIB_GPU_COMPILEALL:-1}" = 0 ] || echo "bytecode compiled into $PYTHONPYCACHEPREFIX: $(du -sh /tmp/pyc | cut -f1)"
