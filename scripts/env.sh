# Sourced by the project's scripts: puts the project's Node 24 (installed by scripts/setup.sh
# from the npm registry into .tools/node) ahead of any older system Node.
EBBFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EBBFLOW_ROOT
export PATH="$EBBFLOW_ROOT/.tools/node/node_modules/.bin:$EBBFLOW_ROOT/node_modules/.bin:$PATH"
