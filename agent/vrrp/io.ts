// The ports the VRRP runtime needs from the outside world. The kernel implementation lives in
// io-kernel.ts (raw sockets, AF_PACKET, rtnetlink through ffi/); keeping the runtime on this small
// interface lets it run against a simulated network in unit tests too.

export interface IfaceInfo {
  name: string;
  ifindex: number;
  mac: Uint8Array;
  /** advert source per family: IPv4 primary address, IPv6 link-local */
  primary: Partial<Record<4 | 6, string>>;
}

/** A received VRRP datagram. IPv4: data starts with the IP header; IPv6: data is the VRRP message. */
export interface VrrpRx {
  family: 4 | 6;
  data: Uint8Array;
  src: string;
  dst: string;
  /** TTL or hop limit as received */
  ttl: number;
  ifindex: number;
}

export interface VrrpTx {
  send(payload: Uint8Array, dst: string): void;
}

export interface AddressOps {
  addAddress(
    ifindex: number,
    address: string,
    prefixLen: number,
    opts: {
      label?: string | undefined;
      nodad?: boolean;
      noPrefixRoute?: boolean;
      /** RT_SCOPE_* value */
      scope?: number | undefined;
      /** IPv4 broadcast address */
      broadcast?: string | undefined;
    },
  ): void;
  delAddress(ifindex: number, address: string, prefixLen: number): void;
  /** addresses present on an interface (canonical text) */
  addressesOf(ifindex: number): string[];
}

export interface VrrpIo {
  kernel: AddressOps;
  iface(name: string): IfaceInfo | null;
  linkUp(name: string): boolean;
  /**
   * A VRRP endpoint on an interface: sends from `src`, and delivers received adverts (those to the
   * multicast `group`, or with group null those addressed to `src`) to `onRx`. Instances with the
   * same (interface, family, src, group) share one endpoint, so `onRx` must dispatch by VRID.
   */
  open(
    iface: IfaceInfo,
    family: 4 | 6,
    src: string,
    group: string | null,
    onRx: (rx: VrrpRx) => void,
  ): VrrpTx;
  sendFrame(ifindex: number, frame: Uint8Array): void;
  onLinkChange(cb: () => void): void;
  /** May deliver routine adverts (non-zero priority) up to `ms` late, several at once; 0 = never. */
  coalesce?(ms: number): void;
  /** True when received adverts wait to be delivered (see PacketReader.pending). */
  pendingInput?(): boolean;
  /**
   * Reports files in `dir` that were written and closed or moved in (`gone` false) and that were
   * deleted or moved out (`gone` true); `name` null when events were lost and every file should be
   * read again. Returns the function that stops watching.
   */
  watchDirectory?(dir: string, onEvent: (name: string | null, gone: boolean) => void): () => void;
  close(): Promise<void>;
}
