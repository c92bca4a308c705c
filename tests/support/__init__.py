"""Helpers the test modules share (imported as ``support.*``; pytest puts
tests/ on sys.path because tests/ is not a package):

variants   file variants (pickle protocols, joblib compressions) and input layouts
serving    real servers in subprocesses, free ports, small fitted models
ops        the operations suites' servers, keys and metric scrapes
hostile    a pickle assembler (Asm) and the code-execution payloads
"""
