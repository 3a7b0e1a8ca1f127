# Mosquitto broker and its command-line clients: tests/integration_mqtt.rs starts a throwaway
# broker on a free loopback port and watches the plugin's publications with mosquitto_sub.
if ! { command -v mosquitto || [ -x /usr/sbin/mosquitto ]; } >/dev/null 2>&1 \
  || ! command -v mosquitto_sub >/dev/null 2>&1 || ! command -v mosquitto_passwd >/dev/null 2>&1; then
  log "installing mosquitto and mosquitto-clients"
  apt_install mosquitto mosquitto-clients
fi
