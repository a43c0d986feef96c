# pragma version ~=0.4.3
# pragma evm-version paris
"""
@title Ledger checkpoint anchor
@notice Holds the Merkle root of a node's audit ledger at growing tree sizes. Only the account that
        deployed it (the node's anchoring key) may anchor; a size once anchored can never be changed,
        and every new size must be larger than the last, so history can only be extended.
@dev    `paris` keeps the bytecode free of PUSH0 and later opcodes, for private EVM chains that lag
        behind mainnet.
"""

event Anchored:
    tree_size: indexed(uint64)
    root: bytes32
    anchored_at: uint256

owner: public(address)
latest_size: public(uint64)
_roots: HashMap[uint64, bytes32]


@deploy
def __init__():
    self.owner = msg.sender


@external
def anchor(tree_size: uint64, root: bytes32):
    """
    @notice Record `root` as the ledger's Merkle root at `tree_size`.
    """
    assert msg.sender == self.owner, "anchor: caller is not the owner"
    assert tree_size > self.latest_size, "anchor: tree size must grow"
    assert root != empty(bytes32), "anchor: empty root"
    self._roots[tree_size] = root
    self.latest_size = tree_size
    log Anchored(tree_size=tree_size, root=root, anchored_at=block.timestamp)


@view
@external
def root_of(tree_size: uint64) -> bytes32:
    """
    @notice The root anchored at `tree_size`, or zero if that size was never anchored.
    """
    return self._roots[tree_size]
