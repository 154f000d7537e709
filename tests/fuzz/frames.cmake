# Fuzzers for what arrives on the wire: BPDUs, 802.1Q frames and guest frames.
vfabric_fuzzer(bpdu_fuzzer SOURCES bpdu_fuzzer.cc DEPS vfabric_stp)
vfabric_fuzzer(vlan_frame_fuzzer SOURCES vlan_frame_fuzzer.cc DEPS vfabric_vlan)
# What a guest writes to its tap: a virtio_net_hdr and a frame, through the
# switch's pipeline (checksum completion, segmentation, tagging).
vfabric_fuzzer(guest_frame_fuzzer SOURCES guest_frame_fuzzer.cc
  DEPS vfabric_bridge vfabric_bridge_testing)
# RSTP engines in a loop, fed BPDU sequences the fuzzer drops, reorders,
# duplicates and forges: no forwarding loop once they have converged.
vfabric_fuzzer(rstp_loop_fuzzer SOURCES rstp_loop_fuzzer.cc DEPS vfabric_stp)
