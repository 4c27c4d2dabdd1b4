service "api" {
    hosts = ["web1"]
    binary = "api.exe"
    file "config.yaml" {
    content = <<-YAML
      listen: :8080
        nested: true
    YAML
    on_change="reload"
    }
}
