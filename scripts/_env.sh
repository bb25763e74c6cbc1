# Sourced by the scripts: finds uv, or installs it from PyPI into a private virtual
# environment (.tools/) so that neither the system Python nor the user's is modified.
if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    if [ ! -x .tools/bin/uv ]; then
        echo "Installing uv (the project's package manager) into .tools/ ..." >&2
        python3 -m venv .tools
        .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
    fi
    UV=(.tools/bin/uv)
fi
