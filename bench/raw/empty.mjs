// The bare fork limit's child: Node starts, loads nothing, exits.
