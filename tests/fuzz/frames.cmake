# Fuzzers for what arrives on the wire: BPDUs and 802.1Q frames.
vfabric_fuzzer(bpdu_fuzzer SOURCES bpdu_fuzzer.cc DEPS vfabric_stp)
vfabric_fuzzer(vlan_frame_fuzzer SOURCES vlan_frame_fuzzer.cc DEPS vfabric_vlan)
