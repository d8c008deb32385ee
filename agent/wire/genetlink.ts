// Generic netlink: the genlmsghdr that follows the nlmsghdr, and the controller family (GENL_ID_CTRL)
// that maps a family name ("IPVS") to the message type the kernel assigned it at boot. Family ids are
// dynamic (IPVS was 32 on one kernel, may be anything on another), so they are always resolved by name.
// Pure: bytes in, values or DecodeError out; decoders never throw on bad input.
import {
  AttrSet,
  encodeAttrs,
  encodeNlMsg,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  type NlAttrSpec,
  nla,
} from "./netlink.ts";
import { fail, ok, type Result } from "./result.ts";

export const GENL_HDRLEN = 4;
/** the controller family's fixed message type */
export const GENL_ID_CTRL = 0x10;

export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
/** version we speak to the controller (the kernel accepts any) */
export const CTRL_VERSION = 2;

export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;
export const CTRL_ATTR_OPS = 6;
export const CTRL_ATTR_MCAST_GROUPS = 7;

export const CTRL_ATTR_MCAST_GRP_NAME = 1;
export const CTRL_ATTR_MCAST_GRP_ID = 2;

export interface GenlHeader {
  cmd: number;
  version: number;
}

/** A generic netlink message split into its parts. */
export interface GenlMsg {
  /** nlmsg_type: the family id */
  family: number;
  flags: number;
  seq: number;
  cmd: number;
  version: number;
  /** attribute bytes after the genlmsghdr (and after any family header of hdrSize bytes) */
  attrs: Uint8Array;
}

export function encodeGenlHeader(h: GenlHeader): Uint8Array {
  // u8 cmd, u8 version, u16 reserved (zero)
  return Uint8Array.of(h.cmd & 0xff, h.version & 0xff, 0, 0);
}

/** One generic netlink request: nlmsghdr(type = family id) + genlmsghdr + attributes. */
export function encodeGenlMsg(
  family: number,
  nlFlags: number,
  h: GenlHeader,
  attrs: readonly NlAttrSpec[],
): Uint8Array {
  return encodeNlMsg(
    { type: family, flags: NLM_F_REQUEST | nlFlags },
    encodeGenlHeader(h),
    encodeAttrs(attrs),
  );
}

/**
 * Splits one whole netlink message (header included, as NetlinkTransport.request returns them) into
 * its generic netlink parts. `hdrSize` skips a family-specific header (IPVS has none).
 */
export function decodeGenlMsg(msg: Uint8Array, hdrSize = 0): Result<GenlMsg> {
  if (msg.length < NLMSG_HDRLEN + GENL_HDRLEN) return fail("genl_short", `${msg.length} bytes`);
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const len = dv.getUint32(0, true);
  if (len < NLMSG_HDRLEN + GENL_HDRLEN) return fail("genl_bad_length", `nlmsg_len ${len}`);
  if (len > msg.length) return fail("genl_truncated", `nlmsg_len ${len} > ${msg.length}`);
  const attrStart = NLMSG_HDRLEN + GENL_HDRLEN + ((hdrSize + 3) & ~3);
  if (attrStart > len) return fail("genl_short_family_header", `${len} bytes`);
  return ok({
    family: dv.getUint16(4, true),
    flags: dv.getUint16(6, true),
    seq: dv.getUint32(8, true),
    cmd: msg[NLMSG_HDRLEN]!,
    version: msg[NLMSG_HDRLEN + 1]!,
    attrs: msg.subarray(attrStart, len),
  });
}

// ---------------------------------------------------------------------------------------------------
// controller

export interface GenlMcastGroup {
  name: string;
  id: number;
}

export interface GenlFamily {
  id: number;
  name: string;
  version: number;
  hdrSize: number;
  maxAttr: number;
  mcastGroups: GenlMcastGroup[];
}

/** CTRL_CMD_GETFAMILY for one family by name (not a dump: the kernel answers ENOENT if it is unknown). */
export function encodeGetFamily(name: string): Uint8Array {
  return encodeGenlMsg(GENL_ID_CTRL, 0, { cmd: CTRL_CMD_GETFAMILY, version: CTRL_VERSION }, [
    nla.str(CTRL_ATTR_FAMILY_NAME, name),
  ]);
}

/** Decodes the controller's CTRL_CMD_NEWFAMILY reply. */
export function decodeFamily(msg: Uint8Array): Result<GenlFamily> {
  const g = decodeGenlMsg(msg);
  if (!g.ok) return g;
  if (g.value.family !== GENL_ID_CTRL) return fail("genl_not_ctrl", `type ${g.value.family}`);
  if (g.value.cmd !== CTRL_CMD_NEWFAMILY) return fail("genl_ctrl_bad_cmd", `cmd ${g.value.cmd}`);
  const a = AttrSet.parse(g.value.attrs);
  if (!a.ok) return a;
  const id = a.value.u16(CTRL_ATTR_FAMILY_ID);
  const name = a.value.str(CTRL_ATTR_FAMILY_NAME);
  if (id === undefined) return fail("genl_ctrl_no_id");
  if (name === undefined) return fail("genl_ctrl_no_name");
  const mcastGroups: GenlMcastGroup[] = [];
  const groups = a.value.nested(CTRL_ATTR_MCAST_GROUPS);
  if (groups) {
    if (!groups.ok) return groups;
    // an array: each element is a nested attribute (type = index) holding name + id
    for (const el of groups.value.list) {
      const ga = AttrSet.parse(el.value);
      if (!ga.ok) return ga;
      const gname = ga.value.str(CTRL_ATTR_MCAST_GRP_NAME);
      const gid = ga.value.u32(CTRL_ATTR_MCAST_GRP_ID);
      if (gname === undefined || gid === undefined) return fail("genl_ctrl_bad_mcast_group");
      mcastGroups.push({ name: gname, id: gid });
    }
  }
  return ok({
    id,
    name,
    version: a.value.u32(CTRL_ATTR_VERSION) ?? 0,
    hdrSize: a.value.u32(CTRL_ATTR_HDRSIZE) ?? 0,
    maxAttr: a.value.u32(CTRL_ATTR_MAXATTR) ?? 0,
    mcastGroups,
  });
}
