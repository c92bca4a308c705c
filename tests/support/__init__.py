"""Helpers the test modules share (imported as ``support.*``; pytest puts
tests/ on sys.path because tests/ is not a package):

parity     the differential checks against scikit-learn and the data they fit on
representatives  how a family's suite joins the shared runs (test_parity_shared.py)
variants   file variants (pickle protocols, joblib compressions) and input layouts
serving    real servers in subprocesses, free ports, small fitted models
ops        the operations suites' servers, keys and metric scrapes
hostile    a pickle assembler (Asm) and the code-execution payloads
"""
