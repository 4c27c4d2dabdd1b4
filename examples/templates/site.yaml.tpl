# Rendered by gsd from examples/templates/site.yaml.tpl for ${host}
host: ${host}
environment: ${environment}
datacenter: ${datacenter}
listen: ":${port}"
greeting: ${greeting}
