#!/usr/bin/env python3
"""Placeholder: replaced by the real generator."""
import sys, os
out = sys.argv[sys.argv.index('--out-dir') + 1]
open(os.path.join(out, 'sm_proto_gen.h'), 'w').write('#pragma once\n')
open(os.path.join(out, 'sm_proto_gen.c'), 'w').write('#include "sm_proto_gen.h"\n')
