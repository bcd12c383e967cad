#!/usr/bin/env python3
"""protogen.py - turn Samsa's protocol definitions (src/proto/defs/*.def) into C.

Usage: protogen.py --out-dir DIR file.def...   writes DIR/sm_proto_gen.h and DIR/sm_proto_gen.c

"The protocol is data": every Kafka message (API requests/responses, the request/response headers,
KRaft metadata records, coordinator records, the consumer protocol) is described once in a .def file;
this script emits a C struct per message and nested struct, plus init/decode/encode functions that
handle every version, classic and flexible (compact lengths, unsigned varints, tagged fields).
Python 3.7+, standard library only.

The .def language
-----------------
  # comment (whole line)
  KIND Name [key=N [listeners=L,...] | type=N [const=NAME]] versions=RANGE flex=RANGE|none
    FieldName   TYPE   RANGE   [null=RANGE] [tag=N[@RANGE]] [default=VALUE] [noflex]
      NestedField ...            (two more spaces of indent = a field of the struct above)
  struct Name versions=RANGE     (a struct shared by several fields of the preceding message)
    FieldName ...

KIND is request | response (key = API key), header, record (type = metadata record type), control
(type = control record type: the value of a Raft control record, whose key is `version int16,
type int16`) or data. listeners= (requests only) names the listeners Kafka serves the API on,
broker and/or controller (the spec's "listeners", without zkBroker); it goes into the API table
(sm_api_desc_t.listeners; 0 when not given).
TYPE is int8 int16 int32 int64 uint16 uint32 float64 bool string bytes records uuid, a struct name
(StructName: fields follow indented, or come from a `struct` block), or []TYPE for an array.
RANGE is "N+", "N-M" or "N". null= gives the versions in which the field may be null, tag=N makes
the field a tagged field (in the versions after @, else in all its versions), default= its value
when absent (a number, true/false, null or ""), noflex keeps the classic encoding even in
flexible versions (the request header's ClientId).

Naming rules of the generated C
-------------------------------
* snake(Name): an underscore goes between a lower-case letter or digit and the upper-case letter
  after it, and before the last capital of a run of capitals that is followed by a lower-case
  letter; then everything is lower-cased. ThrottleTimeMs -> throttle_time_ms, TopicId -> topic_id,
  IsrNodes -> isr_nodes, ISRNodes -> isr_nodes, V3AndBelowTopics -> v3_and_below_topics.
  A name that would be a C keyword gets a trailing underscore.
* Message Foo -> type sm_foo_t; functions sm_foo_init / sm_foo_decode / sm_foo_encode.
* Nested struct Bar of message Foo (inline or shared) -> sm_foo_bar_t, initialiser sm_foo_bar_init.
* Field -> member snake(Name). Arrays are two members: `T *name; int32_t name_count;` (count -1 =
  null). Non-array struct fields are embedded by value.
* API keys: SM_API_<SNAKE(Name without "Request") upper-cased>, e.g. SM_API_OFFSET_FOR_LEADER_EPOCH.
  Metadata record types: SM_METADATA_<SNAKE(Name) upper-cased>, e.g. SM_METADATA_TOPIC_RECORD.
  Control record types: SM_CONTROL_<const=NAME if given, else SNAKE(Name without "Record" or
  "Message") upper-cased>, e.g. LeaderChangeMessage -> SM_CONTROL_LEADER_CHANGE.
* A `records` field starts null (len -1) if it is nullable in some version, else empty (len 0).
"""
import os
import re
import sys

PRIMS = {
    # type: (C type, fixed wire size or None)
    'int8': ('int8_t', 1), 'int16': ('int16_t', 2), 'int32': ('int32_t', 4), 'int64': ('int64_t', 8),
    'uint16': ('uint16_t', 2), 'uint32': ('uint32_t', 4), 'float64': ('double', 8),
    'bool': ('bool', 1), 'uuid': ('sm_uuid_t', 16),
    'string': ('sm_str_t', None), 'bytes': ('sm_bytes_t', None), 'records': ('sm_records_t', None),
}
C_KEYWORDS = set('''auto break case char const continue default do double else enum extern float for
goto if inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while bool true false'''.split())
INF = 0x7fff


def snake(name):
    s = re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', name).lower()
    return s + '_' if s in C_KEYWORDS else s


class DefError(Exception):
    pass


def parse_range(text, where):
    """'N+' -> (N, INF); 'N-M' -> (N, M); 'N' -> (N, N); 'none' -> None."""
    if text == 'none':
        return None
    m = re.fullmatch(r'(\d+)(\+|-(\d+))?', text)
    if not m:
        raise DefError('%s: bad version range %r' % (where, text))
    lo = int(m.group(1))
    if m.group(2) == '+':
        return (lo, INF)
    if m.group(3):
        return (lo, int(m.group(3)))
    return (lo, lo)


class Field:
    def __init__(self, name, typ, versions, where):
        self.name, self.where = name, where
        self.cname = snake(name)
        self.is_array = typ.startswith('[]')
        self.elem = typ[2:] if self.is_array else typ
        self.is_struct = self.elem not in PRIMS
        self.versions = versions
        self.nullable = None
        self.tag = None
        self.tagged = None
        self.default = None
        self.noflex = False
        self.children = []  # inline struct fields
        self.struct = None  # resolved Struct for struct-typed fields


class Struct:
    def __init__(self, msg, name, fields):
        self.msg, self.name, self.fields = msg, name, fields
        self.cname = 'sm_%s' % msg.snake if name is None else 'sm_%s_%s' % (msg.snake, snake(name))


class Message:
    def __init__(self, kind, name, key, versions, flex, where):
        self.kind, self.name, self.key, self.where = kind, name, key, where
        self.snake = snake(name)
        self.versions, self.flex = versions, flex
        self.fields = []
        self.structs = {}  # name -> Struct (nested, inline or shared)
        self.shared = {}   # name -> list of fields from `struct` blocks
        self.top = None
        self.const = None  # control records: the SM_CONTROL_ constant's name
        self.listeners = None  # requests: e.g. ['broker', 'controller']


def parse_def(path):
    msgs = []
    cur = None
    stack = []  # (indent, field list)
    for lineno, raw in enumerate(open(path), 1):
        where = '%s:%d' % (os.path.basename(path), lineno)
        line = raw.rstrip('\n')
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        indent = len(line) - len(line.lstrip(' '))
        toks = line.split()
        if indent == 0:
            kw = toks[0]
            attrs = dict(t.split('=', 1) for t in toks[2:])
            if kw == 'struct':
                if cur is None:
                    raise DefError('%s: struct outside a message' % where)
                lst = []
                cur.shared[toks[1]] = lst
                stack = [(0, lst)]
                continue
            if kw not in ('request', 'response', 'header', 'record', 'control', 'data'):
                raise DefError('%s: unknown block %r' % (where, kw))
            allowed = {'versions', 'flex', 'key' if kw in ('request', 'response') else 'type'}
            if kw == 'control':
                allowed.add('const')
            if kw == 'request':
                allowed.add('listeners')
            for k in attrs:
                if k not in allowed:
                    raise DefError('%s: unknown attribute %s= on a %s' % (where, k, kw))
            key = int(attrs.get('key', attrs.get('type', '-1')))
            cur = Message(kw, toks[1], key, parse_range(attrs['versions'], where),
                          parse_range(attrs['flex'], where), where)
            cur.const = attrs.get('const')
            if 'listeners' in attrs:
                cur.listeners = attrs['listeners'].split(',')
                if not cur.listeners or set(cur.listeners) - {'broker', 'controller'}:
                    raise DefError('%s: listeners= takes broker and/or controller' % where)
            msgs.append(cur)
            stack = [(0, cur.fields)]
            continue
        if cur is None:
            raise DefError('%s: field outside a message' % where)
        if indent % 2:
            raise DefError('%s: odd indentation' % where)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack:
            raise DefError('%s: bad indentation' % where)
        parent = stack[-1][1]
        if len(toks) < 3:
            raise DefError('%s: expected NAME TYPE VERSIONS' % where)
        f = Field(toks[0], toks[1], parse_range(toks[2], where), where)
        for t in toks[3:]:
            if t == 'noflex':
                f.noflex = True
                continue
            k, _, val = t.partition('=')
            if k == 'null':
                f.nullable = parse_range(val, where)
            elif k == 'tag':
                tag, _, tv = val.partition('@')
                f.tag = int(tag)
                f.tagged = parse_range(tv, where) if tv else f.versions
            elif k == 'default':
                f.default = val
            else:
                raise DefError('%s: unknown attribute %r' % (where, t))
        parent.append(f)
        stack.append((indent, f.children))
    return msgs


def resolve(msg):
    """Build the Struct objects of a message, checking names."""
    msg.top = Struct(msg, None, msg.fields)

    def visit(fields):
        seen = set()
        for f in fields:
            for n in (f.cname, f.cname + '_count' if f.is_array else None):
                if n and n in seen:
                    raise DefError('%s: duplicate member %s' % (f.where, n))
                seen.add(n)
            if not f.is_struct:
                if f.children:
                    raise DefError('%s: primitive with fields' % f.where)
                continue
            if f.children:
                if f.elem in msg.structs:
                    raise DefError('%s: struct %s defined twice' % (f.where, f.elem))
                st = Struct(msg, f.elem, f.children)
                msg.structs[f.elem] = st
                visit(f.children)
            elif f.elem not in msg.shared:
                raise DefError('%s: unknown type %s' % (f.where, f.elem))
    visit(msg.fields)
    for name, fields in msg.shared.items():
        if name in msg.structs:
            raise DefError('%s: struct %s defined twice' % (msg.where, name))
        msg.structs[name] = Struct(msg, name, fields)
        visit(fields)

    def link(fields):
        for f in fields:
            if f.is_struct:
                f.struct = msg.structs[f.elem]
    link(msg.fields)
    for st in msg.structs.values():
        link(st.fields)


def struct_order(msg):
    """Nested structs before the structs that embed or point to them."""
    out, done = [], set()

    def walk(st):
        if st.name in done:
            return
        done.add(st.name)
        for f in st.fields:
            if f.is_struct:
                walk(f.struct)
        out.append(st)
    for st in msg.structs.values():
        walk(st)
    return out


# ---------------------------------------------------------------- expressions

def in_range(rng, v):
    return rng is not None and rng[0] <= v <= rng[1]


def ver_cond(rng, msg, base=None):
    """C condition on `v` for rng, simplified against the versions the code can run in (base, by
    default the message's valid versions); None = always."""
    if rng is None:
        return '0'
    lo, hi = rng
    mlo, mhi = base or msg.versions
    if lo > mhi or hi < mlo:
        return '0'
    conds = []
    if lo > mlo:
        conds.append('v >= %d' % lo)
    if hi < mhi:
        conds.append('v <= %d' % hi)
    if lo == hi and len(conds) == 2:
        return 'v == %d' % lo
    return ' && '.join(conds) if conds else None


def and_cond(*cs):
    cs = [c for i, c in enumerate(cs) if c is not None and c not in cs[:i]]
    if '0' in cs:
        return '0'
    return ' && '.join(cs) if cs else None


def flex_expr(msg):
    c = ver_cond(msg.flex, msg) if msg.flex else '0'
    return {None: 'true', '0': 'false'}.get(c, c)


def field_flex(f, msg):
    return 'false' if f.noflex or msg.flex is None else 'flex'


def null_expr(f, msg):
    if f.nullable is None:
        return 'false'
    c = ver_cond(f.nullable, msg)
    return {None: 'true', '0': 'false'}.get(c, c)


def regular_cond(f, msg):
    """Versions where the field is in the fixed part of the struct (present and not tagged)."""
    c = ver_cond(f.versions, msg)
    if f.tag is None:
        return c
    # present and not tagged: tagged ranges are always N+ in practice; handle generally
    tv = f.tagged
    parts = []
    for v in range(msg.versions[0], msg.versions[1] + 1):
        if in_range(f.versions, v) and not in_range(tv, v):
            parts.append(v)
    if not parts:
        return '0'
    return ver_cond((parts[0], parts[-1]), msg)


def tagged_cond(f, msg):
    """Condition inside a tagged-field section, which exists only in flexible versions."""
    base = (max(msg.versions[0], msg.flex[0]), msg.versions[1])
    return and_cond(ver_cond(f.versions, msg, base), ver_cond(f.tagged, msg, base))


def c_int_literal(typ, val):
    n = int(val, 0)
    if typ == 'int32' and n == -2**31:
        return 'INT32_MIN'
    if typ == 'int64' and n == -2**63:
        return 'INT64_MIN'
    if typ == 'int64' and not -2**31 <= n < 2**31:
        return '%dLL' % n
    return val


def default_is_null(f):
    return f.default == 'null'


def min_wire(st, v, msg, depth=0):
    """Smallest encoding of struct st at version v (for the array-count sanity check)."""
    flex = in_range(msg.flex, v)
    n = 1 if flex else 0  # tagged-field count
    for f in st.fields:
        if not in_range(f.versions, v) or (f.tag is not None and in_range(f.tagged, v)):
            continue
        n += field_min_wire(f, v, msg, depth)
    return n


def field_min_wire(f, v, msg, depth):
    flex = in_range(msg.flex, v) and not f.noflex
    if f.is_array:
        return 1 if flex else 4
    if f.is_struct:
        return min_wire(f.struct, v, msg, depth + 1)
    size = PRIMS[f.elem][1]
    if size is not None:
        return size
    if flex:
        return 1
    return 2 if f.elem == 'string' else 4


def elem_min(f, msg):
    """Lower bound on the wire size of one array element, over the versions the array exists in."""
    best = None
    for v in range(msg.versions[0], msg.versions[1] + 1):
        if not in_range(f.versions, v):
            continue
        if f.is_struct:
            n = min_wire(f.struct, v, msg)
        else:
            n = field_min_wire(Field('x', f.elem, f.versions, f.where), v, msg, 0)
        best = n if best is None else min(best, n)
    return max(1, best or 1)


# ---------------------------------------------------------------- C emitters

class Out:
    def __init__(self):
        self.lines = []

    def __call__(self, s='', ind=0):
        self.lines.append(('    ' * ind + s) if s else '')

    def text(self):
        return '\n'.join(self.lines) + '\n'


def member_decl(f):
    if f.is_struct:
        t = f.struct.cname + '_t'
    else:
        t = PRIMS[f.elem][0]
    if f.is_array:
        return ['%s *%s;' % (t, f.cname), 'int32_t %s_count;' % f.cname]
    return ['%s %s;' % (t, f.cname)]


def emit_types(h, msg):
    for st in struct_order(msg) + [msg.top]:
        h('typedef struct %s {' % st.cname)
        if not st.fields:
            h('char unused_; /* no fields in any version */', 1)
        for f in st.fields:
            note = 'v%d+' % f.versions[0] if f.versions[1] == INF else 'v%d-%d' % f.versions
            if f.nullable:
                note += ', nullable'
            if f.tag is not None:
                note += ', tag %d' % f.tag
            if f.default is not None:
                note += ', default %s' % f.default
            decl = member_decl(f)
            h('%-44s /* %s */' % (decl[0], note), 1)
            for d in decl[1:]:
                h(d, 1)
        h('} %s_t;' % st.cname)
        h()


def emit_init(c, msg, st):
    c('void %s_init(%s_t *m)' % (st.cname, st.cname))
    c('{')
    c('memset(m, 0, sizeof *m);', 1)
    for f in st.fields:
        if f.is_array:
            if default_is_null(f):
                c('m->%s_count = -1;' % f.cname, 1)
        elif f.is_struct:
            c('%s_init(&m->%s);' % (f.struct.cname, f.cname), 1)
        elif f.elem in ('string', 'bytes'):
            if default_is_null(f):
                c('m->%s.len = -1;' % f.cname, 1)
            elif f.default not in (None, '""'):
                raise DefError('%s: unsupported default %s' % (f.where, f.default))
        elif f.elem == 'records':
            if f.nullable is not None:  # else empty: a non-nullable field must encode
                c('m->%s.len = -1;' % f.cname, 1)
            c('m->%s.fd = -1;' % f.cname, 1)
        elif f.elem == 'bool':
            if f.default == 'true':
                c('m->%s = true;' % f.cname, 1)
        elif f.elem == 'uuid':
            pass
        elif f.default not in (None, '0'):
            c('m->%s = %s;' % (f.cname, c_int_literal(f.elem, f.default)), 1)
    c('}')
    c()


def read_prim(elem, rd, flex, null, dst):
    if elem == 'bool':
        return '%s = sm_rd_u8(%s) != 0;' % (dst, rd)
    if elem == 'float64':
        return '%s = sm_rd_f64(%s);' % (dst, rd)
    if elem in ('int8', 'int16', 'int32', 'int64'):
        return '%s = sm_rd_i%s(%s);' % (dst, elem[3:], rd)
    if elem in ('uint16', 'uint32'):
        return '%s = sm_rd_u%s(%s);' % (dst, elem[4:], rd)
    if elem == 'uuid':
        return 'sm_proto_rd_uuid(%s, &%s);' % (rd, dst)
    return 'sm_proto_rd_%s(%s, %s, %s, &%s);' % ({'string': 'str'}.get(elem, elem), rd, flex, null, dst)


def write_prim(elem, flex, src):
    if elem == 'bool':
        return 'sm_wbuf_u8(w, %s ? 1 : 0);' % src
    if elem == 'float64':
        return 'sm_wbuf_f64(w, %s);' % src
    if elem in ('int8', 'int16', 'int32', 'int64'):
        return 'sm_wbuf_i%s(w, %s);' % (elem[3:], src)
    if elem in ('uint16', 'uint32'):
        return 'sm_wbuf_u%s(w, %s);' % (elem[4:], src)
    if elem == 'uuid':
        return 'sm_wbuf_bytes(w, %s.b, 16);' % src
    return 'sm_proto_wr_%s(w, %s, %s);' % ({'string': 'str'}.get(elem, elem), flex, src)


def emit_field_decode(c, msg, f, rd, ind):
    flex = field_flex(f, msg)
    null = null_expr(f, msg)
    dst = 'm->' + f.cname
    if f.is_array:  # the caller opens a block for `n`
        ind -= 1
        c('int32_t n = sm_proto_rd_count(%s, %s, %s, %d);' % (rd, flex, null, elem_min(f, msg)), ind + 1)
        c('%s_count = n;' % dst, ind + 1)
        c('if (n > 0) {', ind + 1)
        t = f.struct.cname + '_t' if f.is_struct else PRIMS[f.elem][0]
        c('%s = SM_ARENA_NEW(a, %s, n);' % (dst, t), ind + 2)
        c('for (int32_t i = 0; i < n && !%s; i++)' % ('r->err' if rd == 'r' else 'sub.err'), ind + 2)
        if f.is_struct:
            c('dec_%s(%s, a, v, &%s[i]);' % (f.struct.cname, rd, dst), ind + 3)
        else:
            c(read_prim(f.elem, rd, flex, 'false', dst + '[i]'), ind + 3)
        c('}', ind + 1)
    elif f.is_struct:
        c('dec_%s(%s, a, v, &%s);' % (f.struct.cname, rd, dst), ind)
    else:
        c(read_prim(f.elem, rd, flex, null, dst), ind)


def emit_field_encode(c, msg, f, ind):
    flex = field_flex(f, msg)
    src = 'm->' + f.cname
    if f.is_array:
        c('sm_proto_wr_count(w, %s, %s_count);' % (flex, src), ind)
        c('for (int32_t i = 0; i < %s_count; i++)' % src, ind)
        if f.is_struct:
            c('enc_%s(w, v, &%s[i]);' % (f.struct.cname, src), ind + 1)
        else:
            c(write_prim(f.elem, flex, src + '[i]'), ind + 1)
    elif f.is_struct:
        c('enc_%s(w, v, &%s);' % (f.struct.cname, src), ind)
    else:
        c(write_prim(f.elem, flex, src), ind)


def nondefault_expr(f):
    """C expression: the field differs from its default (tagged fields are written only then)."""
    src = 'm->' + f.cname
    if f.is_array:
        return '%s_count %s' % (src, '>= 0' if default_is_null(f) else '!= 0')
    if f.is_struct:
        return '!is_default_%s(&%s)' % (f.struct.cname, src)
    if f.elem in ('string', 'bytes', 'records'):
        return '%s.len %s' % (src, '>= 0' if default_is_null(f) or f.elem == 'records' else '!= 0')
    if f.elem == 'uuid':
        return '!sm_uuid_is_zero(%s)' % src
    if f.elem == 'bool':
        return '%s != %s' % (src, 'true' if f.default == 'true' else 'false')
    d = c_int_literal(f.elem, f.default) if f.default is not None else '0'
    return '%s != %s' % (src, d)


def uses_flex(st, msg):
    if msg.flex is None:
        return False
    return True  # every struct of a flexible message has a tag section


def emit_cond(c, cond, ind):
    """Open `if (cond)` when needed; returns the body's indent."""
    if cond is None:
        return ind
    c('if (%s)' % cond, ind)
    return ind + 1


def emit_decode(c, msg, st):
    c('static void dec_%s(sm_rd_t *r, sm_arena_t *a, int16_t v, %s_t *m)' % (st.cname, st.cname))
    c('{')
    c('%s_init(m);' % st.cname, 1)
    if uses_flex(st, msg):
        c('const bool flex = %s;' % flex_expr(msg), 1)
    for f in st.fields:
        cond = regular_cond(f, msg)
        if cond == '0':
            continue
        if f.is_array:
            c('if (%s) {' % cond if cond else '{', 1)
            emit_field_decode(c, msg, f, 'r', 2)
            c('}', 1)
        else:
            emit_field_decode(c, msg, f, 'r', emit_cond(c, cond, 1))
    tagged = sorted([f for f in st.fields if f.tag is not None and tagged_cond(f, msg) != '0'],
                    key=lambda f: f.tag)
    if msg.flex is not None:
        if not tagged:
            c('if (flex)', 1)
            c('sm_proto_rd_skip_tags(r);', 2)
        else:
            c('if (flex) {', 1)
            c('uint32_t ntags = sm_rd_uvarint(r);', 2)
            c('for (uint32_t t = 0; t < ntags && !r->err; t++) {', 2)
            c('uint32_t tag;', 3)
            c('sm_rd_t sub;', 3)
            c('if (!sm_proto_rd_tag(r, &tag, &sub))', 3)
            c('break;', 4)
            c('switch (tag) {', 3)
            for f in tagged:
                c('case %d:' % f.tag, 3)
                cond = tagged_cond(f, msg)
                if f.is_array:
                    c('if (%s) {' % cond if cond else '{', 4)
                    emit_field_decode(c, msg, f, '&sub', 5)
                    c('}', 4)
                else:
                    emit_field_decode(c, msg, f, '&sub', emit_cond(c, cond, 4))
                c('break;', 4)
            c('default: /* unknown tags are skipped */', 3)
            c('break;', 4)
            c('}', 3)
            c('if (sub.err)', 3)
            c('r->err = SM_ERR_PARSE;', 4)
            c('}', 2)
            c('}', 1)
    c('}')
    c()


def emit_encode(c, msg, st):
    c('static void enc_%s(sm_wbuf_t *w, int16_t v, const %s_t *m)' % (st.cname, st.cname))
    c('{')
    if uses_flex(st, msg):
        c('const bool flex = %s;' % flex_expr(msg), 1)
    for f in st.fields:
        cond = regular_cond(f, msg)
        if cond == '0':
            continue
        if f.is_array and cond is not None:
            c('if (%s) {' % cond, 1)
            emit_field_encode(c, msg, f, 2)
            c('}', 1)
        else:
            emit_field_encode(c, msg, f, emit_cond(c, cond, 1))
    tagged = sorted([f for f in st.fields if f.tag is not None and tagged_cond(f, msg) != '0'],
                    key=lambda f: f.tag)
    if msg.flex is not None:
        if not tagged:
            c('if (flex)', 1)
            c('sm_wbuf_u8(w, 0); /* no tagged fields */', 2)
        else:
            c('if (flex) {', 1)
            c('uint32_t ntags = 0;', 2)
            for f in tagged:
                c('if (%s)' % and_cond(tagged_cond(f, msg), nondefault_expr(f)), 2)
                c('ntags++;', 3)
            c('sm_wbuf_uvarint(w, ntags);', 2)
            for f in tagged:
                c('if (%s) {' % and_cond(tagged_cond(f, msg), nondefault_expr(f)), 2)
                c('sm_wbuf_uvarint(w, %d);' % f.tag, 3)
                c('size_t at = w->len;', 3)
                emit_field_encode(c, msg, f, 3)
                c('sm_proto_wr_tag_size(w, at);', 3)
                c('}', 2)
            c('}', 1)
    c('}')
    c()


def is_error_field(f):
    return not f.is_array and f.elem == 'int16' and f.name.endswith('ErrorCode')


def has_errors(st, seen=None):
    """Does st, or a struct it embeds or points to, carry an ...ErrorCode field?"""
    seen = seen or set()
    if st.name in seen:
        return False
    seen = seen | {st.name}
    return any(is_error_field(f) or (f.is_struct and has_errors(f.struct, seen)) for f in st.fields)


def emit_errors(c, msg, st):
    """err_<struct>(m, fn, arg): fn(arg, code) for every non-zero ...ErrorCode field, at any depth
    (fields absent from a version keep their default 0, so no version checks are needed)."""
    c('static void err_%s(const %s_t *m, sm_proto_err_fn fn, void *arg)' % (st.cname, st.cname))
    c('{')
    for f in st.fields:
        if is_error_field(f):
            c('if (m->%s)' % f.cname, 1)
            c('fn(arg, m->%s);' % f.cname, 2)
        elif f.is_struct and has_errors(f.struct):
            if f.is_array:
                c('for (int32_t i = 0; i < m->%s_count; i++)' % f.cname, 1)
                c('err_%s(&m->%s[i], fn, arg);' % (f.struct.cname, f.cname), 2)
            else:
                c('err_%s(&m->%s, fn, arg);' % (f.struct.cname, f.cname), 1)
    c('}')
    c()


def tagged_structs(msg):
    """Structs used as non-array tagged fields (they need an is_default check)."""
    out = []

    def add(st):
        if st not in out:
            for f in st.fields:
                if f.is_struct and not f.is_array:
                    add(f.struct)
            out.append(st)
    for st in [msg.top] + list(msg.structs.values()):
        for f in st.fields:
            if f.tag is not None and f.is_struct and not f.is_array:
                add(f.struct)
    return out


def emit_is_default(c, msg, st):
    c('static bool is_default_%s(const %s_t *m)' % (st.cname, st.cname))
    c('{')
    conds = ['!(%s)' % nondefault_expr(f) for f in st.fields]
    c('return %s;' % ('\n        && '.join(conds) if conds else 'true'), 1)
    c('}')
    c()


# ---- test helpers: fill every field present in a version with a non-default value; deep compare

def fill_prim(elem, f, dst):
    if elem == 'bool':
        return '%s = %s;' % (dst, 'false' if f.default == 'true' else 'true')
    if elem == 'float64':
        return '%s = 0.5 + (double)(*k)++;' % dst
    if elem == 'int8':
        return '%s = (int8_t)(2 + (*k)++ %% 100);' % dst
    if elem in ('int16', 'uint16'):
        return '%s = (%s)(2 + (*k)++ %% 30000);' % (dst, PRIMS[elem][0])
    if elem in ('int32', 'uint32'):
        return '%s = (%s)(2 + 7 * (*k)++);' % (dst, PRIMS[elem][0])
    if elem == 'int64':
        return '%s = (int64_t)(2 + 1000003LL * (*k)++);' % dst
    if elem == 'uuid':
        return 'sm_proto_test_uuid(&%s, (*k)++);' % dst
    return 'sm_proto_test_%s(a, &%s, (*k)++);' % ({'string': 'str'}.get(elem, elem), dst)


def emit_fill(c, msg, st):
    c('static void fill_%s(%s_t *m, sm_arena_t *a, int16_t v, uint32_t *k)' % (st.cname, st.cname))
    c('{')
    c('%s_init(m);' % st.cname, 1)
    for f in st.fields:
        cond = ver_cond(f.versions, msg)
        if cond == '0':
            continue
        if f.tag is not None:
            cond = and_cond('sm_proto_test_fill_tagged', cond)
        dst = 'm->' + f.cname
        if f.is_array:
            t = f.struct.cname + '_t' if f.is_struct else PRIMS[f.elem][0]
            c('if (%s) {' % cond if cond else '{', 1)
            c('%s_count = 2;' % dst, 2)
            c('%s = SM_ARENA_NEW(a, %s, 2);' % (dst, t), 2)
            c('for (int i = 0; i < 2; i++)', 2)
            if f.is_struct:
                c('fill_%s(&%s[i], a, v, k);' % (f.struct.cname, dst), 3)
            else:
                c(fill_prim(f.elem, f, dst + '[i]'), 3)
            c('}', 1)
        elif f.is_struct:
            c('fill_%s(&%s, a, v, k);' % (f.struct.cname, dst), emit_cond(c, cond, 1))
        else:
            c(fill_prim(f.elem, f, dst), emit_cond(c, cond, 1))
    c('}')
    c()


def eq_prim(elem, x, y):
    if elem in ('string', 'bytes', 'records'):
        return 'sm_proto_test_eq_bytes(%s.ptr, %s.len, %s.ptr, %s.len)' % (x, x, y, y)
    if elem == 'uuid':
        return 'memcmp(%s.b, %s.b, 16) == 0' % (x, y)
    return '%s == %s' % (x, y)


def emit_equal(c, msg, st):
    c('static bool eq_%s(const %s_t *x, const %s_t *y)' % (st.cname, st.cname, st.cname))
    c('{')
    for f in st.fields:
        x, y = 'x->' + f.cname, 'y->' + f.cname
        what = '"%s.%s"' % (st.name or msg.name, f.name)
        if f.is_array:
            c('if (%s_count != %s_count)' % (x, y), 1)
            c('return sm_proto_test_mismatch(%s);' % what, 2)
            c('for (int32_t i = 0; i < %s_count; i++)' % x, 1)
            if f.is_struct:
                c('if (!eq_%s(&%s[i], &%s[i]))' % (f.struct.cname, x, y), 2)
            else:
                c('if (!(%s))' % eq_prim(f.elem, x + '[i]', y + '[i]'), 2)
            c('return sm_proto_test_mismatch(%s);' % what, 3)
        elif f.is_struct:
            c('if (!eq_%s(&%s, &%s))' % (f.struct.cname, x, y), 1)
            c('return sm_proto_test_mismatch(%s);' % what, 2)
        else:
            c('if (!(%s))' % eq_prim(f.elem, x, y), 1)
            c('return sm_proto_test_mismatch(%s);' % what, 2)
    c('return true;', 1)
    c('}')
    c()


# ---------------------------------------------------------------- whole files

def kind_const(msg):
    return 'SM_PROTO_' + msg.kind.upper()


def control_name(msg):
    if msg.const:
        return msg.const
    for suffix in ('Record', 'Message'):
        if msg.name.endswith(suffix):
            return msg.name[:-len(suffix)]
    return msg.name


def api_name(msg):
    return msg.name[:-len('Request')] if msg.name.endswith('Request') else msg.name


def generate(msgs, out_dir):
    h, c = Out(), Out()
    reqs = sorted([m for m in msgs if m.kind == 'request'], key=lambda m: m.key)
    resps = {m.key: m for m in msgs if m.kind == 'response'}
    for rq in reqs:
        rs = resps.get(rq.key)
        if rs is None or rs.versions != rq.versions or rs.flex != rq.flex:
            raise DefError('%s: response of %s missing or with other versions' % (rq.where, rq.name))

    h('/*')
    h(' * sm_proto_gen.h - GENERATED by tools/protogen.py from the .def files in src/proto/defs. Do not edit.')
    h(' *')
    h(' * One C struct per Kafka message and per nested struct, with init/decode/encode functions that')
    h(' * cover every version. Naming: message Foo -> sm_foo_t (snake case of the Kafka name), nested')
    h(' * struct Bar -> sm_foo_bar_t, field FooBar -> foo_bar, arrays -> `T *x; int32_t x_count;`')
    h(' * (count -1 = null). Decoded strings/bytes/records are views into the reader\'s buffer, arrays')
    h(' * live in the arena: both must outlive the decoded struct. All functions are pure and may run')
    h(' * on any thread. See tools/protogen.py for the full rules and src/proto/proto.h for the types.')
    h(' */')
    h('#ifndef SM_PROTO_GEN_H')
    h('#define SM_PROTO_GEN_H')
    h()
    h('#include "proto.h"')
    h()
    h('/* Called with each non-zero error code of a response (sm_<response>_errors). */')
    h('typedef void (*sm_proto_err_fn)(void *arg, int16_t error_code);')
    h()
    h('/* API keys */')
    h('enum {')
    for rq in reqs:
        h('SM_API_%s = %d,' % (snake(api_name(rq)).upper(), rq.key), 1)
    h('};')
    h()
    h('/* KRaft metadata record types (the record\'s frame carries this number) */')
    h('enum {')
    for m in sorted([m for m in msgs if m.kind == 'record'], key=lambda m: m.key):
        h('SM_METADATA_%s = %d,' % (snake(m.name).upper(), m.key), 1)
    h('};')
    h()
    controls = sorted([m for m in msgs if m.kind == 'control'], key=lambda m: m.key)
    if controls:
        h('/* Raft control record types (the control record\'s key carries this number; 0 = ABORT and')
        h(' * 1 = COMMIT are transaction markers) */')
        h('enum {')
        for m in controls:
            h('SM_CONTROL_%s = %d,' % (control_name(m) if m.const else snake(control_name(m)).upper(),
                                        m.key), 1)
        h('};')
        h()
    for m in msgs:
        h('/* ---- %s: versions %d-%d, %s */' % (m.name, m.versions[0], m.versions[1],
                                                  'flexible from v%d' % m.flex[0] if m.flex else 'never flexible'))
        emit_types(h, m)
        for st in struct_order(m):
            h('void %s_init(%s_t *m);' % (st.cname, st.cname))
        h('void sm_%s_init(sm_%s_t *m);' % (m.snake, m.snake))
        h('SM_MUST_CHECK sm_err_t sm_%s_decode(sm_rd_t *r, sm_arena_t *a, int16_t version, sm_%s_t *out);'
          % (m.snake, m.snake))
        h('void sm_%s_encode(sm_wbuf_t *w, int16_t version, const sm_%s_t *m);' % (m.snake, m.snake))
        if m.kind == 'response':
            h('/* fn(arg, code) for every non-zero ...ErrorCode field (metrics). */')
            h('void sm_%s_errors(const sm_%s_t *m, sm_proto_err_fn fn, void *arg);' % (m.snake, m.snake))
        h()
    h('/* The API table, sorted by key: one entry per request/response pair above. */')
    h('extern const sm_api_desc_t sm_api_table[];')
    h('extern const size_t sm_api_table_count;')
    h('/* Every message (headers, requests, responses, records, data), for tests and tools. */')
    h('extern const sm_proto_msg_t sm_proto_msgs[];')
    h('extern const size_t sm_proto_msgs_count;')
    h()
    h('#endif')

    c('/* GENERATED by tools/protogen.py from the .def files in src/proto/defs; do not edit. */')
    c('#include "sm_proto_gen.h"')
    c()
    c('#include <stdio.h>')
    c('#include <string.h>')
    c()
    for m in msgs:
        c('/* ================================================================ %s */' % m.name)
        c()
        order = struct_order(m) + [m.top]
        for st in order:
            c('static void dec_%s(sm_rd_t *r, sm_arena_t *a, int16_t v, %s_t *m);' % (st.cname, st.cname))
            c('static void enc_%s(sm_wbuf_t *w, int16_t v, const %s_t *m);' % (st.cname, st.cname))
        c()
        for st in order:
            emit_init(c, m, st)
        for st in tagged_structs(m):
            emit_is_default(c, m, st)
        for st in order:
            emit_decode(c, m, st)
            emit_encode(c, m, st)
        c('sm_err_t sm_%s_decode(sm_rd_t *r, sm_arena_t *a, int16_t version, sm_%s_t *out)'
          % (m.snake, m.snake))
        c('{')
        c('if (version < %d || version > %d) {' % m.versions, 1)
        c('sm_%s_init(out);' % m.snake, 2)
        c('return SM_ERR_UNSUPPORTED;', 2)
        c('}', 1)
        c('dec_sm_%s(r, a, version, out);' % m.snake, 1)
        c('return r->err ? SM_ERR_PARSE : SM_OK;', 1)
        c('}')
        c()
        c('void sm_%s_encode(sm_wbuf_t *w, int16_t version, const sm_%s_t *m)' % (m.snake, m.snake))
        c('{')
        c('SM_ASSERT(version >= %d && version <= %d);' % m.versions, 1)
        c('enc_sm_%s(w, version, m);' % m.snake, 1)
        c('}')
        c()
        if m.kind == 'response':
            for st in order:
                if has_errors(st) and st is not m.top:
                    emit_errors(c, m, st)
            if has_errors(m.top):
                emit_errors(c, m, m.top)
            c('void sm_%s_errors(const sm_%s_t *m, sm_proto_err_fn fn, void *arg)' % (m.snake, m.snake))
            c('{')
            if has_errors(m.top):
                c('err_sm_%s(m, fn, arg);' % m.snake, 1)
            else:
                c('(void)m;', 1)
                c('(void)fn;', 1)
                c('(void)arg;', 1)
            c('}')
            c()
        # test helpers and type-erased wrappers for the message table
        for st in order:
            emit_fill(c, m, st)
            emit_equal(c, m, st)
        s = m.snake
        c('static void any_init_%s(void *m) { sm_%s_init(m); }' % (s, s))
        c('static sm_err_t any_decode_%s(sm_rd_t *r, sm_arena_t *a, int16_t v, void *m)' % s)
        c('{')
        c('return sm_%s_decode(r, a, v, m);' % s, 1)
        c('}')
        c('static void any_encode_%s(sm_wbuf_t *w, int16_t v, const void *m) { sm_%s_encode(w, v, m); }'
          % (s, s))
        c('static void any_fill_%s(void *m, sm_arena_t *a, int16_t v)' % s)
        c('{')
        c('uint32_t k = 1;', 1)
        c('fill_sm_%s(m, a, v, &k);' % s, 1)
        c('}')
        c('static bool any_equal_%s(const void *x, const void *y) { return eq_sm_%s(x, y); }' % (s, s))
        c()

    c('/* ================================================================ tables */')
    c()
    c('const sm_api_desc_t sm_api_table[] = {')
    for rq in reqs:
        lst = ''
        if rq.listeners:
            lst = ', ' + ' | '.join('SM_API_LISTENER_' + l.upper() for l in sorted(set(rq.listeners)))
        c('{%d, "%s", %d, %d, %d%s},' % (rq.key, api_name(rq), rq.versions[0], rq.versions[1],
                                        rq.flex[0] if rq.flex else -1, lst), 1)
    c('};')
    c('const size_t sm_api_table_count = %d;' % len(reqs))
    c()
    c('const sm_proto_msg_t sm_proto_msgs[] = {')
    for m in msgs:
        s = m.snake
        c('{"%s", %s, %d, %d, %d, %d, sizeof(sm_%s_t), any_init_%s, any_decode_%s, any_encode_%s,'
          % (m.name, kind_const(m), m.key, m.versions[0], m.versions[1], m.flex[0] if m.flex else -1,
             s, s, s, s), 1)
        c('any_fill_%s, any_equal_%s},' % (s, s), 2)
    c('};')
    c('const size_t sm_proto_msgs_count = %d;' % len(msgs))
    c()
    c('const sm_api_desc_t *sm_api_desc(int16_t api_key)')
    c('{')
    c('switch (api_key) {', 1)
    for i, rq in enumerate(reqs):
        c('case %d: return &sm_api_table[%d];' % (rq.key, i), 1)
    c('default: return NULL;', 1)
    c('}', 1)
    c('}')
    c()
    c('const sm_proto_msg_t *sm_proto_msg(sm_proto_kind_t kind, int16_t key)')
    c('{')
    c('switch (kind) {', 1)
    for kind in ('request', 'response', 'record') + (('control',) if controls else ()):
        c('case SM_PROTO_%s:' % kind.upper(), 1)
        c('switch (key) {', 2)
        for i, m in enumerate(msgs):
            if m.kind == kind:
                c('case %d: return &sm_proto_msgs[%d];' % (m.key, i), 2)
        c('default: return NULL;', 2)
        c('}', 2)
    c('default:', 1)
    c('return NULL;', 2)
    c('}', 1)
    c('}')

    hdr = os.path.join(out_dir, 'sm_proto_gen.h')
    src = os.path.join(out_dir, 'sm_proto_gen.c')
    for path, text in ((hdr, h.text()), (src, c.text())):
        tmp = path + '.tmp'
        with open(tmp, 'w') as fp:
            fp.write(text.replace('\n\n\n', '\n\n'))
        os.replace(tmp, path)


def main(argv):
    if '--out-dir' not in argv:
        sys.stderr.write('usage: protogen.py --out-dir DIR file.def...\n')
        return 2
    i = argv.index('--out-dir')
    out_dir = argv[i + 1]
    files = sorted(argv[1:i] + argv[i + 2:], key=os.path.basename)
    msgs = []
    try:
        for path in files:
            msgs.extend(parse_def(path))
        names = set()
        for m in msgs:
            if m.name in names:
                raise DefError('%s: message %s defined twice' % (m.where, m.name))
            names.add(m.name)
            resolve(m)
        generate(msgs, out_dir)
    except DefError as e:
        sys.stderr.write('protogen: %s\n' % e)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
