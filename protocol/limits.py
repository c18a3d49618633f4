"""Hard limits on everything that crosses the wire or reaches storage.

Every decoder enforces these before doing any work proportional to the input, so a
peer cannot make a node allocate or loop beyond them.
"""

MAX_DEPTH = 12  # nesting of msgpack arrays in any encoded object
MAX_STR = 4096  # bytes of any single string unless a field says less
MAX_CHAIN_ID = 64
MAX_KIND = 32

MAX_TX_BYTES = 64 * 1024
MAX_TX_BODY = 60 * 1024
MAX_COSIGNATURES = 16

MAX_BLOCK_TXS = 10_000
MAX_BLOCK_BYTES = 8 * 1024 * 1024
MAX_EVIDENCE = 64
MAX_VALIDATORS = 256

MAX_VOTE_BYTES = 512
MAX_PROPOSAL_BYTES = MAX_BLOCK_BYTES + 1024
MAX_ROUND = 2**31 - 1
U64_MAX = 2**64 - 1
