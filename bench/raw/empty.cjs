// The bare fork limit's child: Node starts, loads nothing, exits. CommonJS, the cheapest start: an
// empty ES module costs ~5 ms more CPU (Node's asynchronous module loader runs first).
