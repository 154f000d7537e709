# What a vhost-user frontend and its guest control: the messages on the
# socket (with fds) and every byte of the rings in guest memory.
vfabric_fuzzer(vhost_user_message_fuzzer SOURCES vhost_user_message_fuzzer.cc
  DEPS vfabric_vhost_user)
vfabric_fuzzer(virtqueue_fuzzer SOURCES virtqueue_fuzzer.cc DEPS vfabric_vhost_user)
